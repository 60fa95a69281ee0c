# The bus389 services (router, ICT, standing office) and CLI in one image.
#   docker build -t bus389 .        docker run --rm bus389 bus389 --help
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/bus389
COPY pyproject.toml README.md ./
COPY bus389 ./bus389
COPY schemas ./schemas
COPY producers ./producers
COPY consumers ./consumers
COPY deploy ./deploy
COPY examples ./examples
RUN pip install . \
    && useradd --system --uid 10389 --user-group --home-dir /var/lib/bus389 --create-home bus389

# The package is installed into site-packages; the data files it reads from the checkout are here.
ENV BUS389_ROUTER__POLICY_PATH=/opt/bus389/deploy/routing-policy.yaml \
    BUS389_METRICS__HOST=0.0.0.0 \
    BUS389_METRICS__JSON_LOGS=true \
    BUS389_STORE__ICT_URL=sqlite:////var/lib/bus389/ict.sqlite3 \
    BUS389_STORE__STANDING_OFFICE_URL=sqlite:////var/lib/bus389/standing_office.sqlite3 \
    BUS389_ICT__OUTPUT_DIR=/var/lib/bus389/blocklist

USER bus389
WORKDIR /var/lib/bus389
VOLUME ["/var/lib/bus389"]
EXPOSE 9464 9465 9466
CMD ["bus389", "--help"]
