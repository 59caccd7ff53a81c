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
            # A traceback can carry the token too (an exception's message with a request URL):
            # render it once here, cleaned; every formatter reuses the cached exc_text.
            if record.exc_info and not record.exc_text:
                record.exc_text = _TRACEBACKS.formatException(record.exc_info)
            if record.exc_text and self.token in record.exc_text:
                record.exc_text = record.exc_text.replace(self.token, "<redacted>")
            if record.stack_info and self.token in record.stack_info:
                record.stack_info = record.stack_info.replace(self.token, "<redacted>")
        return True


_TRACEBACKS = logging.Formatter()


def install_token_redaction(token: str) -> TokenRedactor:
    redactor = TokenRedactor(token)
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig()
    for handler in root.handlers:
        handler.addFilter(redactor)
    return redactor
