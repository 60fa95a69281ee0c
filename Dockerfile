# The bus389 services (router, ICT, standing office, web console) and CLI in one image, installed from the wheel.
#   docker build -t bus389 .        docker run --rm bus389 bus389 --help
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bus389 ./bus389
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /wheels /wheels
# The wheel carries its data (schemas, the default routing policy): nothing of the source tree is copied.
# named-checkzone (bind9-utils): the ICT service parses every new RPZ zone with it before installing it.
RUN apt-get update && apt-get install -y --no-install-recommends bind9-utils && rm -rf /var/lib/apt/lists/*
RUN pip install "$(ls /wheels/*.whl)[web]" && rm -rf /wheels \
    && useradd --system --uid 10389 --user-group --home-dir /var/lib/bus389 --create-home bus389

# A deployment points at its own routing policy with BUS389_ROUTER__POLICY_PATH (a mounted file).
ENV BUS389_METRICS__HOST=0.0.0.0 \
    BUS389_METRICS__JSON_LOGS=true \
    BUS389_STORE__ICT_URL=sqlite:////var/lib/bus389/ict.sqlite3 \
    BUS389_STORE__STANDING_OFFICE_URL=sqlite:////var/lib/bus389/standing_office.sqlite3 \
    BUS389_ICT__OUTPUT_DIR=/var/lib/bus389/blocklist \
    BUS389_WEB__USERS_DB=/var/lib/bus389/web.sqlite3 \
    BUS389_WEB__SESSION_SECRET_FILE=/var/lib/bus389/web-session.key \
    BUS389_WEB__UPLOAD_DIR=/var/lib/bus389/web-uploads

USER bus389
WORKDIR /var/lib/bus389
VOLUME ["/var/lib/bus389"]
EXPOSE 8389 9464 9465 9466 9467
CMD ["bus389", "--help"]
