"""Keep the bot token out of every log line.

httpx and python-telegram-bot log request URLs, and Bot API URLs contain the token
(``/bot<TOKEN>/sendMessage``). A filter on every handler of the root logger replaces it.
"""

from __future__ import annotations

import logging


class TokenRedactor(logging.Filter):
    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        if self.token:
            message = record.getMessage()
            if self.token in message:
                record.msg = message.replace(self.token, "<redacted>")
                record.args = ()
        return True


def install_token_redaction(token: str) -> TokenRedactor:
    redactor = TokenRedactor(token)
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig()
    for handler in root.handlers:
        handler.addFilter(redactor)
    return redactor
