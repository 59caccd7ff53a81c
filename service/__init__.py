"""Floor 4: what runs the stages together — the poll pipeline, the demo, the CLI commands' logic and
the Telegram application wiring. Nothing here is Telegram-free logic that belongs lower down."""
