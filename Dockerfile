# DPRK–Russia monitor: the Telegram bot in a slim image, run as an unprivileged user.
#   docker build -t dprk-ru-monitor .
#   docker run -d --env-file .env -v "$PWD/config:/config" -v monitor-data:/data dprk-ru-monitor
# /config holds config.yaml and rules/ (filled with the defaults on first start; rule edits from chat
# write there); /data holds the SQLite store. See README "Deployment" and compose.yaml.
FROM python:3.11-slim-bookworm

LABEL org.opencontainers.image.title="dprk-ru-monitor" \
      org.opencontainers.image.description="Telegram alert bot that watches RSS/Atom feeds for DPRK–Russia military ties" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="MIT"

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MONITOR_CONFIG=/config/config.yaml \
    MPLCONFIGDIR=/tmp/matplotlib

# A fixed uid/gid, so that bind-mounted folders can be given to it: chown 10001:10001 ./config
RUN groupadd --system --gid 10001 monitor \
    && useradd --system --uid 10001 --gid monitor --home-dir /app --no-create-home --shell /usr/sbin/nologin monitor

WORKDIR /app

# Dependencies first (exact pins, wheels only: no compiler in the image), so code edits reuse this layer.
COPY requirements.lock ./
RUN pip install --no-cache-dir --only-binary=:all: -r requirements.lock

# The code, owned by root and read-only for the bot; the defaults the entrypoint copies into /config.
COPY pyproject.toml README.md bot.py ./
COPY core/ core/
COPY watchers/ watchers/
COPY rules/ rules/
COPY store/ store/
COPY delivery/ delivery/
COPY chat/ chat/
COPY service/ service/
COPY cli/ cli/
COPY examples/feeds/ examples/feeds/
COPY deploy/docker-entrypoint.sh deploy/config.docker.yaml deploy/
RUN pip install --no-cache-dir --no-deps . \
    && rm -rf build ./*.egg-info \
    && mkdir -p /config /data \
    && chown monitor:monitor /config /data

USER 10001:10001
VOLUME ["/config", "/data"]
EXPOSE 9464

# `bot.py health` asks the bot's own /healthz (metrics.listen in the config): unhealthy when polling stalls.
HEALTHCHECK --interval=60s --timeout=10s --start-period=120s --retries=3 CMD ["python", "bot.py", "health"]

ENTRYPOINT ["/app/deploy/docker-entrypoint.sh"]
CMD ["python", "bot.py", "run"]
