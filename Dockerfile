# One image for all four services; the compose file picks the module to run.
FROM python:3.11-slim
# The compilers/runtimes of the submission languages, and the C compiler for the sandbox helper.
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc g++ libc6-dev nodejs \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml setup.py MANIFEST.in README.md ./
COPY protos ./protos
COPY vibe ./vibe
COPY vibe_dev ./vibe_dev
# The package build generates the gRPC stubs (vibe_api/) from protos/ itself.
RUN pip install --no-cache-dir . \
 && cc -O2 -Wall -Wextra -Werror -static -o /usr/local/bin/vibe-box vibe/services/scoring/vibe-box.c \
 && useradd --system --no-create-home vibe
# Every service but scoring runs as this unprivileged user; scoring runs as root (compose sets
# it) because it builds each run's namespaces and cgroups, and runs programs as other uids.
USER vibe
ENV PYTHONUNBUFFERED=1
