# One image for all four services; the compose file picks the module to run.
FROM python:3.11-slim
# The code sandbox: bubblewrap, and the compilers/runtimes of the submission languages.
RUN apt-get update \
 && apt-get install -y --no-install-recommends bubblewrap g++ nodejs util-linux \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml setup.py MANIFEST.in README.md ./
COPY protos ./protos
COPY vibe ./vibe
COPY vibe_dev ./vibe_dev
# The package build generates the gRPC stubs (vibe_api/) from protos/ itself.
RUN pip install --no-cache-dir . \
 && useradd --system --no-create-home vibe
USER vibe
ENV PYTHONUNBUFFERED=1
