# person-enrich-mcp: MCP over stdio by default; streamable HTTP with
#   docker run -p 127.0.0.1:8000:8000 ... person-enrich-mcp --transport http --host 0.0.0.0 --port 8000
# The key comes from the environment at run time (-e CRUSTDATA_API_KEY), never from the image.

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
# The redis extra: replicas share budgets, cache and rate limits through PERSON_ENRICH_STATE_URL=redis://...
# The otel extra: traces when OTEL_EXPORTER_OTLP_ENDPOINT is set (nothing of it is loaded otherwise).
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir ".[redis,otel]"

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
RUN useradd --system --uid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
EXPOSE 8000
ENTRYPOINT ["person-enrich-mcp"]
