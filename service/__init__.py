"""Floor 4: the running bot — the poll pipeline (pipeline, enrich), the Telegram application and its
jobs (app, state), metrics and /healthz, quiet-feed notices and spike alerts. The command line's bodies
are in cli/, one floor up; nothing here imports cli/."""
