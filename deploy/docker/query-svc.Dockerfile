# syntax=docker/dockerfile:1
# query-svc image. Build context = repo root:
#   docker build -f deploy/docker/query-svc.Dockerfile -t cqrs/query-svc .

ARG DEBIAN_RELEASE=bookworm

# --- build -------------------------------------------------------------------
# This stage is the same, instruction for instruction, in all five Dockerfiles: it
# builds every service and the probe, so an engine with a layer cache (podman,
# BuildKit) compiles the sources once for all five images (`make images`).
# Keep it identical (tests/images/smoke.sh checks); tests/ is not needed with
# CQRS_TESTS=OFF. libpq-dev: the top-level CMakeLists.txt finds libpq (the
# projector's FerretDB index helper).
FROM debian:${DEBIAN_RELEASE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config \
      librdkafka-dev libmongoc-dev libbson-dev uuid-dev libevent-dev libpq-dev \
      libcjose-dev libjansson-dev libcurl4-openssl-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY libshared/ libshared/
COPY command-svc/ command-svc/
COPY projector-svc/ projector-svc/
COPY query-svc/ query-svc/
COPY admin-svc/ admin-svc/
COPY saga-svc/ saga-svc/
COPY tools/ tools/
COPY docs/openapi/ docs/openapi/
COPY deploy/docker/healthcheck.c deploy/docker/healthcheck.c
RUN cmake -S . -B build -G Ninja -DCQRS_TESTS=OFF -DCMAKE_BUILD_TYPE=Release \
 && cmake --build build --target command-svc projector-svc query-svc admin-svc saga-svc \
 && gcc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Os -static -s \
      -o build/bin/healthcheck deploy/docker/healthcheck.c

# --- run ---------------------------------------------------------------------
FROM debian:${DEBIAN_RELEASE}-slim
# Runtime libraries only (what `ldd query-svc` needs: MongoDB, Kafka for the control
# topic's tenants and keys, libpq, the JOSE stack). tests/images/smoke.sh checks with ldd
# inside the image that nothing is missing.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      librdkafka1 libmongoc-1.0-0 libbson-1.0-0 libuuid1 libevent-2.1-7 libevent-pthreads-2.1-7 \
      libpq5 libcjose0 libjansson4 libcurl4 libssl3 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/bin/query-svc /usr/local/bin/query-svc
COPY --from=build /src/build/bin/healthcheck /usr/local/bin/healthcheck
# Numeric, so Kubernetes runAsNonRoot can verify it without /etc/passwd.
USER 10001:10001
EXPOSE 8081
STOPSIGNAL SIGTERM
# Static probe: GET /healthz on 127.0.0.1:$HTTP_PORT (default 8081). No shell, no curl.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/healthcheck", "8081", "/healthz"]
ENTRYPOINT ["/usr/local/bin/query-svc"]
