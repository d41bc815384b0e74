# Build the image from a clone of this repository.
docker build -t person-enrich-mcp .
# stdio (the default), for a client that starts the container itself; -e passes the key from your shell.
docker run -i --rm -e CRUSTDATA_API_KEY person-enrich-mcp
# The sandbox over stdio: synthetic data, no key.
docker run -i --rm person-enrich-mcp --sandbox
# Streamable HTTP at http://127.0.0.1:8000/mcp, for clients that hold a token from `person-enrich-mcp token create NAME`.
docker run --rm -p 127.0.0.1:8000:8000 -e CRUSTDATA_API_KEY -e PERSON_ENRICH_TOKENS_FILE=/run/secrets/tokens -v "$PWD/tokens:/run/secrets/tokens:ro" person-enrich-mcp --transport http --host 0.0.0.0 --port 8000
