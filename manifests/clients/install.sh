# Put the command person-enrich-mcp on your PATH, in an environment of its own, from this checkout (uv: see
# https://docs.astral.sh/uv/; ./scripts/test also installs one as .venv/bin/uv). Add --reinstall after a git pull.
uv tool install .
