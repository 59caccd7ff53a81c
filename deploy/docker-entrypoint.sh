#!/bin/sh
# Container entrypoint: on first start, give /config the default config.yaml and rules, then run the CMD.
# An existing config.yaml or rules/ folder is never touched: after the first start they are the user's.
#   MONITOR_CONFIG  the config file (image default /config/config.yaml)
#   APP_DIR         where the image keeps the code and the defaults (default /app)
set -eu

app_dir=${APP_DIR:-/app}
config=${MONITOR_CONFIG:-/config/config.yaml}
config_dir=$(dirname "$config")

writable_or_exit() {
    if ! mkdir -p "$1" 2>/dev/null || [ ! -w "$1" ]; then
        echo "docker-entrypoint: $1 is not writable by uid $(id -u); give the host folder to that user" \
            "(chown $(id -u):$(id -g) FOLDER) or use a named volume" >&2
        exit 1
    fi
}

if [ ! -e "$config" ]; then
    writable_or_exit "$config_dir"
    cp "$app_dir/deploy/config.docker.yaml" "$config"
    echo "docker-entrypoint: no $config; wrote the default one (set admins, subscriptions, feeds there)" >&2
fi
if [ ! -e "$config_dir/rules" ]; then
    writable_or_exit "$config_dir"
    mkdir "$config_dir/rules"
    cp "$app_dir"/rules/*.yaml "$config_dir/rules/"
    echo "docker-entrypoint: copied the default rules to $config_dir/rules/" >&2
fi

exec "$@"
