# Images of the four services, built in stages so that no build tool ships:
#
#   web       Node.js and npm: builds the pages' script bundle (tools/web: esbuild bundles CodeMirror,
#             markdown-it, DOMPurify and vibe/services/gateway/web/src/) from the npm registry; never run.
#   build     compilers and pip: builds the wheel (the package build generates the gRPC stubs
#             from protos/) and the static sandbox helper vibe-box; never run.
#   base      Debian's python3 + a virtualenv holding the wheel and its dependencies; nothing else.
#   runtime   gateway, tutor, evaluator: base as an unprivileged user (uid 10001).
#   scoring   base + what submitted programs are compiled and run with (g++, node) + vibe-box,
#             run as root (see the stage).
#
#   docker build --target runtime -t vibe:dev .       docker build --target scoring -t vibe-scoring:dev .
#
# docker-compose.yml builds both; deploy/k8s/ runs them on Kubernetes (README, "Deployment").
#
# The base image is pinned by digest: debian:bookworm-20260918-slim, the multi-platform index
# recorded by the official images' repo-info (repos/debian/remote/bookworm-20260918-slim.md), so
# a rebuild starts from the same bytes; a dated tag alone could be re-pushed. Debian 12 because
# submitted Python runs with the distribution's /usr/bin/python3 (the sandbox mounts /usr only;
# vibe/services/scoring/languages.py), which the python:* images lack (theirs is in /usr/local),
# and it is the Debian of the development machines and CI; its python3 (3.11) is one the project
# supports, so the services run with it too. Update the digest and the date together.
ARG BASE_IMAGE=debian:bookworm-20260918-slim@sha256:3783cc01769c7b2b1b83a5c5ad96c815348e28ed7da68e2e3687004faa906251

FROM ${BASE_IMAGE} AS web
# The packages are pinned by tools/web/package-lock.json (npm ci); only the bundle leaves this stage.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates nodejs npm \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY tools/web/package.json tools/web/package-lock.json tools/web/build.mjs ./tools/web/
RUN npm ci --prefix tools/web --no-audit --no-fund
COPY vibe/services/gateway/web/src ./vibe/services/gateway/web/src
RUN node tools/web/build.mjs

FROM ${BASE_IMAGE} AS build
# gcc + libc6-dev: the static helper; python3-venv: pip for the wheel build and the virtualenv.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gcc libc6-dev python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py MANIFEST.in README.md ./
COPY protos ./protos
COPY vibe ./vibe
COPY vibe_dev ./vibe_dev
# The page's bundle, from the web stage (a bundle in the local tree is ignored: .dockerignore); the
# wheel then ships it as package data.
COPY --from=web /src/vibe/services/gateway/web/static ./vibe/services/gateway/web/static
# The sandbox helper: static, so it starts in a fraction of a millisecond and needs no library
# at run time; root-owned 0755 (the scoring service refuses a helper anybody else could write).
RUN mkdir -p /out \
 && cc -O2 -Wall -Wextra -Werror -static -o /out/vibe-box vibe/services/scoring/vibe-box.c \
 && chmod 0755 /out/vibe-box
# The wheel (its build, in pip's isolated environment, runs vibe_dev/protos.py: the stubs are in
# it), then the virtualenv the services run from: the wheel and its dependencies, no pip left.
RUN python3 -m venv /opt/build-venv \
 && /opt/build-venv/bin/pip install --no-cache-dir --quiet --upgrade pip \
 && /opt/build-venv/bin/pip wheel --no-cache-dir --no-deps --wheel-dir /out/wheels . \
 && python3 -m venv --without-pip /opt/vibe \
 && /opt/build-venv/bin/pip --python /opt/vibe/bin/python install --no-cache-dir --quiet /out/wheels/*.whl

FROM ${BASE_IMAGE} AS base
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 \
 && rm -rf /var/lib/apt/lists/*
# The virtualenv's python links to /usr/bin/python3: the same Debian package as in the build stage.
COPY --from=build /opt/vibe /opt/vibe
ENV PATH=/opt/vibe/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /opt/vibe

FROM base AS runtime
# gateway, tutor and evaluator need no privilege at all: a fixed numeric uid, so that
# Kubernetes' runAsNonRoot can check it (a user name cannot be checked without /etc/passwd).
RUN groupadd --system --gid 10001 vibe && useradd --system --uid 10001 --gid 10001 --no-create-home vibe
USER 10001:10001
CMD ["python", "-m", "vibe.services.gateway"]

FROM base AS scoring
# Not build tools of ours: what the scoring service needs at run time. g++ compiles C++
# submissions and node runs JavaScript ones (languages.py calls /usr/bin/g++ and /usr/bin/node);
# python3 for Python submissions is in base already.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends g++ nodejs \
 && rm -rf /var/lib/apt/lists/*
# COPY gives uid 0 and keeps the build stage's mode 0755: root-owned, writable by nobody else.
COPY --from=build /out/vibe-box /usr/local/bin/vibe-box
ENV SCORING_SANDBOX_HELPER=/usr/local/bin/vibe-box
# Root on purpose: the sandbox creates each run's namespaces and tmpfs mounts, writes its cgroups
# and runs programs as other uids (60000 + slot). The container also needs a writable cgroup
# filesystem (compose: privileged; Kubernetes: deploy/k8s/base/scoring.yaml). The service refuses
# to start, naming the cause, rather than run code with less isolation.
USER 0:0
CMD ["python", "-m", "vibe.services.scoring"]
