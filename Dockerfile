# One image for all four services; the compose file picks the module to run.
FROM python:3.11-slim
# The compilers/runtimes of the submission languages, and the C compiler for the sandbox helper.
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc g++ libc6-dev nodejs \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY protos ./protos
COPY vibe ./vibe
COPY gateway ./gateway
COPY tutor_service ./tutor_service
COPY evaluator_service ./evaluator_service
COPY scoring_service ./scoring_service
# Generate the protobuf code first, so that the installed package contains it.
RUN pip install --no-cache-dir 'grpcio-tools>=1.66,<2' \
 && python -m grpc_tools.protoc -I protos --python_out=. --pyi_out=. --grpc_python_out=. protos/vibe/*/v1/*.proto \
 && pip install --no-cache-dir . \
 && cc -O2 -Wall -Wextra -Werror -static -o /usr/local/bin/vibe-box scoring_service/vibe-box.c \
 && useradd --system --no-create-home vibe
# Every service but scoring runs as this unprivileged user; scoring runs as root (compose sets
# it) because it builds each run's namespaces and cgroups, and runs programs as other uids.
USER vibe
ENV PYTHONUNBUFFERED=1
