"""A Telegram Bot API emulator over real HTTP on 127.0.0.1, for end-to-end tests and benchmarks.

python-telegram-bot talks to it through ``base_url`` exactly as to Telegram; tests act as users
(``user_sends``), read what the bot sent (``sent``), and inject Telegram's failures (``fail_next``).
Updates go out by long polling (``getUpdates``) or, after ``setWebhook``, are POSTed to the bot's webhook
on 127.0.0.1 with the secret-token header (``webhook_posts`` records each post).
"""

from tgemu.server import BotApiEmulator, SentMessage, Webhook, WebhookPost

__all__ = ["BotApiEmulator", "SentMessage", "Webhook", "WebhookPost"]
