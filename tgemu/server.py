"""The emulator: the Bot API methods the bot uses, validated the way Telegram validates them.

Updates reach the bot one of two ways, as with Telegram: ``getUpdates`` (long polling, the default), or,
once the bot called ``setWebhook``, POSTed by the emulator to the webhook URL — each update the same JSON
getUpdates would return, one at a time and in order, with the ``X-Telegram-Bot-Api-Secret-Token``
header when a secret was set; a non-2xx answer or a refused connection is retried with back-off
(``webhook_retry`` doubling up to ``WEBHOOK_RETRY_MAX``) and shown in ``getWebhookInfo``'s
last_error_message. While a webhook is set, getUpdates answers 409 Conflict as Telegram does;
``deleteWebhook`` clears it (pending updates stay for getUpdates unless ``drop_pending_updates``). Only
127.0.0.1/localhost URLs are accepted, and posts never go through a proxy: tests must never send
traffic anywhere else.
"""

from __future__ import annotations

import html
import json
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.error import HTTPError
from urllib.parse import parse_qs, unquote, urlsplit
from urllib.request import ProxyHandler, Request, build_opener

ALLOWED_TAGS = frozenset(
    [
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "tg-spoiler",
        "span",
        "a",
        "tg-emoji",
        "code",
        "pre",
        "blockquote",
    ]
)
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^>]*)?)>")
_ENTITY = re.compile(r"&(#\d+|#x[0-9a-fA-F]+|lt|gt|amp|quot);")
BOT_ID = 777000111
UNREADABLE_REPLIES = frozenset({"bad_reply", "bad_reply_fields"})
WEBHOOK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
WEBHOOK_RETRY_MAX = 2.0  # seconds: the longest pause between two posts of an update the bot refused
CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
)
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
_NO_PROXY = build_opener(ProxyHandler({}))  # webhook posts go to 127.0.0.1 directly, whatever *_proxy says


def _unreadable(result: dict[str, Any], kind: str) -> dict[str, Any]:
    """A message object as a broken Bot API server might answer it (the send itself went through)."""
    if kind == "bad_reply":
        return {**result, "link_preview_options": "disabled"}
    return {k: v for k, v in result.items() if k not in ("chat", "date")}


def _json_param(value: Any) -> Any:
    """Bot API parameters such as reply_markup arrive JSON-serialised inside the request."""
    return json.loads(value) if isinstance(value, str) else value


class EntityError(ValueError):
    pass


class ConflictError(Exception):
    """Answered with 409, as Telegram answers getUpdates while a webhook is set."""


def parse_html(text: str) -> str:
    """The visible text of ``text`` in Telegram's HTML mode; raises EntityError as Telegram would."""
    out: list[str] = []
    stack: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "<":
            m = _TAG.match(text, i)
            if not m:
                raise EntityError(f"Can't parse entities: unexpected '<' at byte offset {i}")
            closing, name = m.group(1) == "/", m.group(2).lower()
            if name not in ALLOWED_TAGS:
                raise EntityError(f'Can\'t parse entities: unsupported start tag "{name}" at byte offset {i}')
            if closing:
                if not stack or stack[-1] != name:
                    raise EntityError(f"Can't parse entities: can't find start tag for \"{name}\" at offset {i}")
                stack.pop()
            else:
                if name == "a" and "href=" not in m.group(3):
                    pass
                stack.append(name)
            i = m.end()
        elif c == "&":
            m = _ENTITY.match(text, i)
            if not m:
                raise EntityError(f"Can't parse entities: unsupported entity at byte offset {i}")
            out.append(html.unescape(m.group(0)))
            i = m.end()
        elif c == ">":
            raise EntityError(f"Can't parse entities: unexpected '>' at byte offset {i}")
        else:
            out.append(c)
            i += 1
    if stack:
        raise EntityError(f"Can't parse entities: can't find end tag corresponding to start tag \"{stack[-1]}\"")
    return "".join(out)


@dataclass
class SentMessage:
    chat_id: int | str
    message_id: int
    text: str
    parse_mode: str | None
    date: float
    reply_markup: Any = None
    link_preview_disabled: bool = False
    document: bytes | None = None
    filename: str | None = None
    photo: bytes | None = None  # the uploaded image of a sendPhoto (``text`` holds its caption)
    reply_to: int | None = None  # the message id a sendMessage replied to (reply_parameters)
    edits: int = 0  # how many times editMessageText changed it


@dataclass
class _Fault:
    method: str
    chat_id: str | None
    kind: str
    times: int
    retry_after: int = 1
    new_chat_id: int = 0
    after: int = 0  # matching calls let through before the fault starts


@dataclass
class Webhook:
    """What the bot's setWebhook asked for, and how the last post went (getWebhookInfo shows both)."""

    url: str
    secret_token: str | None = None
    allowed_updates: tuple[str, ...] = ()  # empty: every kind
    max_connections: int = 40
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass(frozen=True)
class WebhookPost:
    """One POST of an update to the webhook: ``status`` 0 when the connection failed."""

    update_id: int
    url: str
    status: int
    secret_token: str | None


@dataclass
class _Chat:
    id: int | str
    type: str
    title: str | None = None
    username: str | None = None
    members: dict[int, str] = field(default_factory=dict)


class BotApiEmulator:
    def __init__(self, token: str = "123456:TEST-token") -> None:
        self.token = token
        self.lock = threading.Condition()
        self.updates: list[dict[str, Any]] = []
        self.update_id = 1
        self.message_id = 1
        self.messages: list[SentMessage] = []
        self.chats: dict[str, _Chat] = {}
        self.faults: list[_Fault] = []
        self.commands: list[dict[str, Any]] = []  # setMyCommands without a language_code
        self.commands_by_language: dict[str, list[dict[str, Any]]] = {}  # … and with one
        self.files: dict[str, bytes] = {}  # file_id -> content, for getFile and downloads
        self.requests: list[tuple[float, str, str | None]] = []  # (time, method, chat_id)
        self.answers: dict[str, dict[str, Any]] = {}  # callback_query id -> the bot's answerCallbackQuery
        self.inline_answers: dict[str, dict[str, Any]] = {}  # inline_query id -> the bot's answerInlineQuery
        self.long_polling = True  # False: getUpdates ignores its timeout and answers at once, as some servers do
        self.webhook: Webhook | None = None  # set by setWebhook: updates are POSTed there, getUpdates is refused
        self.webhook_calls: list[dict[str, Any]] = []  # the parameters of every setWebhook, in order
        self.webhook_posts: list[WebhookPost] = []  # every POST to the webhook, in order
        self.webhook_retry = 0.05  # seconds before the first repost of a refused update (then doubling)
        self._stopping = threading.Event()
        self._poster: threading.Thread | None = None
        # Called (on the server's thread) with each message the moment it is accepted, before the reply
        # goes out: a test can make something fail right after Telegram took a message.
        self.on_accept: Callable[[SentMessage], None] | None = None
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                emulator._handle(self)

            do_GET = do_POST

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 256

            def handle_error(self, request: Any, client_address: Any) -> None:
                # A client that hangs up mid-answer (PTB closing a long poll at shutdown) is normal.
                if isinstance(sys.exc_info()[1], ConnectionError):
                    return
                super().handle_error(request, client_address)

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="tgemu", daemon=True)

    # -- lifecycle -----------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def base_file_url(self) -> str:
        """What to give PTB's ``base_file_url``."""
        return f"{self.url}/file/bot"

    @property
    def base_url(self) -> str:
        """What to give PTB's ``base_url`` (it appends the token)."""
        return f"{self.url}/bot"

    def __enter__(self) -> BotApiEmulator:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stopping.set()
        with self.lock:
            self.lock.notify_all()
        if self._poster is not None:
            self._poster.join(timeout=10)
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # -- the user side -------------------------------------------------------------------------------

    def add_chat(
        self, chat_id: int | str, type: str = "private", title: str | None = None, username: str | None = None
    ) -> None:
        with self.lock:
            self.chats[str(chat_id)] = _Chat(chat_id, type, title, username)

    def set_member(self, chat_id: int | str, user_id: int, status: str) -> None:
        with self.lock:
            self.chats[str(chat_id)].members[user_id] = status

    def remove_chat(self, chat_id: int | str) -> None:
        with self.lock:
            self.chats.pop(str(chat_id), None)

    def user_deletes(self, chat_id: int | str, message_id: int) -> None:
        """A message is deleted in the chat: editing it then fails with "message to edit not found"."""
        with self.lock:
            self.messages = [
                m for m in self.messages if not (str(m.chat_id) == str(chat_id) and m.message_id == message_id)
            ]

    def user_sends(self, chat_id: int, user_id: int, text: str, *, language_code: str | None = None) -> None:
        """A user's message; ``language_code`` is the user's Telegram app language (IETF tag), if any."""
        chat = self.chats[str(chat_id)]
        message: dict[str, Any] = {
            "message_id": self._next_message_id(),
            "date": int(time.time()),
            "text": text,
            "chat": self._chat_json(chat),
            "from": {"id": user_id, "is_bot": False, "first_name": f"user{user_id}"},
        }
        if language_code:
            message["from"]["language_code"] = language_code
        if text.startswith("/"):
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        self._push({"message": message})

    def user_sends_document(
        self, chat_id: int, user_id: int, filename: str, data: bytes, caption: str = "", *, declare_size: bool = True
    ) -> None:
        """Send a document; ``declare_size=False`` leaves ``file_size`` out of the message (it is optional)."""
        chat = self.chats[str(chat_id)]
        with self.lock:
            file_id = f"doc{len(self.files) + 1}"
            self.files[file_id] = data
        message: dict[str, Any] = {
            "message_id": self._next_message_id(),
            "date": int(time.time()),
            "chat": self._chat_json(chat),
            "from": {"id": user_id, "is_bot": False, "first_name": f"user{user_id}"},
            "document": {
                "file_id": file_id,
                "file_unique_id": f"u{file_id}",
                "file_name": filename,
            },
        }
        if declare_size:
            message["document"]["file_size"] = len(data)
        if caption:
            message["caption"] = caption
            if caption.startswith("/"):
                message["caption_entities"] = [{"type": "bot_command", "offset": 0, "length": len(caption.split()[0])}]
        self._push({"message": message})

    def user_clicks(self, chat_id: int | str, user_id: int, message_id: int, data: str) -> str:
        """Press an inline-keyboard button of the bot's message ``message_id``; returns the callback
        query's id (for :meth:`wait_answer`)."""
        chat = self.chats[str(chat_id)]
        sent = next(m for m in self.sent(chat_id) if m.message_id == message_id)
        message = {
            "message_id": message_id,
            "date": int(sent.date),
            "chat": self._chat_json(chat),
            "text": sent.text,
            "from": self._m_getMe({}),
        }
        query_id = str(self.update_id)
        self._push(
            {
                "callback_query": {
                    "id": query_id,
                    "from": {"id": user_id, "is_bot": False, "first_name": f"user{user_id}"},
                    "chat_instance": str(chat_id),
                    "data": data,
                    "message": message,
                }
            }
        )
        return query_id

    def buttons(self, chat_id: int | str, message_id: int) -> list[tuple[str, str]]:
        """The inline-keyboard buttons (text, callback data) of the bot's message ``message_id``."""
        sent = next(m for m in self.sent(chat_id) if m.message_id == message_id)
        rows = (sent.reply_markup or {}).get("inline_keyboard", [])
        return [(b["text"], b.get("callback_data", "")) for row in rows for b in row]

    def wait_answer(self, query_id: str, timeout: float = 10.0) -> dict[str, Any] | None:
        """The bot's answerCallbackQuery to the press ``query_id`` (see :meth:`user_clicks`), once it came."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while query_id not in self.answers and time.monotonic() < deadline:
                self.lock.wait(0.05)
            return self.answers.get(query_id)

    def user_inline_query(self, user_id: int, query: str, offset: str = "", chat_type: str = "private") -> str:
        """Type ``@bot query`` in a chat (inline mode); returns the inline query's id (for
        :meth:`wait_inline_answer`)."""
        with self.lock:
            query_id = f"iq{self.update_id}"
        self._push(
            {
                "inline_query": {
                    "id": query_id,
                    "from": {"id": user_id, "is_bot": False, "first_name": f"user{user_id}"},
                    "query": query,
                    "offset": offset,
                    "chat_type": chat_type,
                }
            }
        )
        return query_id

    def wait_inline_answer(self, query_id: str, timeout: float = 10.0) -> dict[str, Any] | None:
        """The bot's answerInlineQuery to ``query_id`` (``results`` decoded), once it came."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while query_id not in self.inline_answers and time.monotonic() < deadline:
                self.lock.wait(0.05)
            return self.inline_answers.get(query_id)

    def fail_next(
        self,
        method: str,
        kind: str,
        *,
        chat_id: int | str | None = None,
        times: int = 1,
        retry_after: int = 1,
        new_chat_id: int = 0,
        after: int = 0,
    ) -> None:
        """Make the next ``times`` calls of ``method`` (to ``chat_id``, if given) fail like Telegram, once
        ``after`` such calls went through: kind is '429', '403', '400_entities', '400_chat', '500', '502',
        'reset', 'migrate', or one of the accepted-but-unreadable replies: 'bad_reply' (the message IS
        delivered, but the reply carries ``link_preview_options`` as a string, which python-telegram-bot
        cannot parse: TypeError) and 'bad_reply_fields' (delivered; the reply's message lacks ``chat`` and
        ``date``: PTB fails with KeyError/TypeError)."""
        with self.lock:
            self.faults.append(
                _Fault(method, None if chat_id is None else str(chat_id), kind, times, retry_after, new_chat_id, after)
            )

    def sent(self, chat_id: int | str | None = None) -> list[SentMessage]:
        with self.lock:
            return [m for m in self.messages if chat_id is None or str(m.chat_id) == str(chat_id)]

    def wait_for(self, chat_id: int | str, count: int, timeout: float = 10.0) -> list[SentMessage]:
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                got = [m for m in self.messages if str(m.chat_id) == str(chat_id)]
                if len(got) >= count or time.monotonic() > deadline:
                    return got
                self.lock.wait(0.05)

    def wait_webhook_posts(self, count: int, timeout: float = 10.0) -> list[WebhookPost]:
        """The webhook posts so far, once there are ``count`` of them (or the timeout passed)."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while len(self.webhook_posts) < count and time.monotonic() < deadline:
                self.lock.wait(0.05)
            return list(self.webhook_posts)

    def pending_updates(self) -> int:
        with self.lock:
            return len(self.updates)

    # -- webhook delivery ----------------------------------------------------------------------------

    def _post_updates(self) -> None:
        """The poster thread: the oldest pending update to the webhook until it answers 2xx, then the next."""
        delay = self.webhook_retry
        while True:
            with self.lock:
                while not self._stopping.is_set() and not (self.webhook is not None and self.updates):
                    self.lock.wait(0.1)
                if self._stopping.is_set():
                    return
                hook = self.webhook
                assert hook is not None
                update = self.updates[0]
                if hook.allowed_updates and not any(kind in update for kind in hook.allowed_updates):
                    self.updates.pop(0)  # a kind the bot did not ask for: Telegram drops it
                    continue
            status, error = self._post(hook, update)
            with self.lock:
                self.webhook_posts.append(WebhookPost(update["update_id"], hook.url, status, hook.secret_token))
                if 200 <= status < 300:
                    if self.updates and self.updates[0] is update:
                        self.updates.pop(0)
                    delay = self.webhook_retry
                else:
                    hook.last_error_date, hook.last_error_message = int(time.time()), error
                self.lock.notify_all()
            if not 200 <= status < 300:
                self._stopping.wait(delay)
                delay = min(delay * 2, WEBHOOK_RETRY_MAX)

    @staticmethod
    def _post(hook: Webhook, update: dict[str, Any]) -> tuple[int, str]:
        """(HTTP status or 0, Telegram's last_error_message for a failure)."""
        headers = {"Content-Type": "application/json"}
        if hook.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = hook.secret_token
        request = Request(hook.url, data=json.dumps(update).encode(), headers=headers, method="POST")
        try:
            with _NO_PROXY.open(request, timeout=5) as response:
                response.read()
                return int(response.status), ""
        except HTTPError as exc:
            return exc.code, f"Wrong response from the webhook: {exc.code} {exc.reason}"
        except OSError as exc:  # refused, reset, timed out
            return 0, f"Connection failed: {exc}"

    # -- the bot side --------------------------------------------------------------------------------

    def _next_message_id(self) -> int:
        self.message_id += 1
        return self.message_id

    def _push(self, update: dict[str, Any]) -> None:
        with self.lock:
            update["update_id"] = self.update_id
            self.update_id += 1
            self.updates.append(update)
            self.lock.notify_all()

    @staticmethod
    def _chat_json(chat: _Chat) -> dict[str, Any]:
        out: dict[str, Any] = {"id": chat.id if isinstance(chat.id, int) else -1000000000001, "type": chat.type}
        if chat.title:
            out["title"] = chat.title
        if chat.username:
            out["username"] = chat.username
        if chat.type == "private":
            out["first_name"] = chat.title or "user"
        return out

    def _params(self, request: BaseHTTPRequestHandler) -> dict[str, Any]:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        ctype = request.headers.get("Content-Type", "")
        if ctype.startswith("application/json"):
            return dict(json.loads(body or b"{}"))
        if ctype.startswith("multipart/form-data"):
            msg = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {ctype}\r\n\r\n".encode() + body)
            params: dict[str, Any] = {}
            for part in msg.iter_parts():
                name = part.get_param("name", header="content-disposition")
                filename = part.get_filename()
                payload = part.get_payload(decode=True)
                params[str(name)] = (filename, payload) if filename else bytes(payload).decode()
            return params
        return {k: v[0] for k, v in parse_qs(body.decode()).items()}

    def _reply(self, request: BaseHTTPRequestHandler, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def _error(
        self, request: BaseHTTPRequestHandler, code: int, description: str, parameters: dict[str, Any] | None = None
    ) -> None:
        payload: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
        if parameters:
            payload["parameters"] = parameters
        self._reply(request, code, payload)

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        download = re.fullmatch(r"/file/bot([^/]+)/documents/(\w+)", unquote(request.path))
        if download:
            data = self.files.get(download.group(2)) if download.group(1) == self.token else None
            request.send_response(200 if data is not None else 404)
            request.send_header("Content-Length", str(len(data or b"")))
            request.end_headers()
            request.wfile.write(data or b"")
            return
        m = re.fullmatch(r"/bot([^/]+)/(\w+)", request.path.split("?")[0])
        if not m or m.group(1) != self.token:
            self._error(request, 404, "Not Found")
            return
        method = m.group(2)
        params = self._params(request)
        chat_id = params.get("chat_id")
        with self.lock:
            self.requests.append((time.monotonic(), method, None if chat_id is None else str(chat_id)))
            fault = next(
                (
                    f
                    for f in self.faults
                    if f.method == method and f.times > 0 and (f.chat_id is None or f.chat_id == str(chat_id))
                ),
                None,
            )
            if fault and fault.after > 0:
                fault.after -= 1
                fault = None
            elif fault:
                fault.times -= 1
        if fault and fault.kind not in UNREADABLE_REPLIES:
            self._inject(request, fault)
            return
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            self._error(request, 404, "Not Found")
            return
        try:
            result = handler(params)
        except EntityError as exc:
            self._error(request, 400, f"Bad Request: {exc}")
            return
        except LookupError as exc:
            self._error(request, 400, f"Bad Request: {exc.args[0]}")
            return
        except ConflictError:
            self._error(request, 409, CONFLICT)
            return
        if fault and isinstance(result, dict):  # accepted and recorded; the reply is what PTB cannot read
            result = _unreadable(result, fault.kind)
        self._reply(request, 200, {"ok": True, "result": result})

    def _inject(self, request: BaseHTTPRequestHandler, fault: _Fault) -> None:
        if fault.kind == "reset":
            request.close_connection = True
            try:
                import socket

                request.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if fault.kind == "429":
            self._error(
                request, 429, f"Too Many Requests: retry after {fault.retry_after}", {"retry_after": fault.retry_after}
            )
        elif fault.kind == "403":
            self._error(request, 403, "Forbidden: bot was kicked from the channel chat")
        elif fault.kind == "400_entities":
            self._error(request, 400, 'Bad Request: can\'t parse entities: Unsupported start tag "x"')
        elif fault.kind == "400_chat":
            self._error(request, 400, "Bad Request: chat not found")
        elif fault.kind == "migrate":
            self._error(
                request,
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": fault.new_chat_id},
            )
        elif fault.kind in ("401", "404"):
            self._error(request, int(fault.kind), "Unauthorized" if fault.kind == "401" else "Not Found")
        else:
            self._error(request, int(fault.kind), "Internal Server Error")

    # -- methods -------------------------------------------------------------------------------------

    def _m_getMe(self, _: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": BOT_ID,
            "is_bot": True,
            "first_name": "Monitor",
            "username": "monitor_test_bot",
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def _m_setWebhook(self, params: dict[str, Any]) -> bool:
        url = str(params.get("url") or "")
        if not url:  # Telegram: an empty url removes the webhook
            return self._m_deleteWebhook(params)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or parts.hostname not in WEBHOOK_HOSTS:
            raise LookupError("bad webhook: the emulator posts only to http(s)://127.0.0.1 or localhost")
        secret = params.get("secret_token")
        if secret is not None and not _SECRET_TOKEN.fullmatch(str(secret)):
            raise LookupError("bad webhook: secret token contains unallowed characters")
        allowed = _json_param(params.get("allowed_updates")) or []
        with self.lock:
            self.webhook_calls.append(dict(params))
            self.webhook = Webhook(
                url,
                None if secret is None else str(secret),
                tuple(str(kind) for kind in allowed),
                int(params.get("max_connections") or 40),
            )
            if params.get("drop_pending_updates") in (True, "true", "True"):
                self.updates.clear()
            if self._poster is None:
                self._poster = threading.Thread(target=self._post_updates, name="tgemu-webhook", daemon=True)
                self._poster.start()
            self.lock.notify_all()
        return True

    def _m_deleteWebhook(self, params: dict[str, Any]) -> bool:
        with self.lock:
            self.webhook = None
            if params.get("drop_pending_updates") in (True, "true", "True"):
                self.updates.clear()
            self.lock.notify_all()
        return True

    def _m_getWebhookInfo(self, _: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            hook = self.webhook
            info: dict[str, Any] = {
                "url": hook.url if hook else "",
                "has_custom_certificate": False,
                "pending_update_count": len(self.updates),
            }
            if hook is not None:
                info["max_connections"] = hook.max_connections
                if hook.allowed_updates:
                    info["allowed_updates"] = list(hook.allowed_updates)
                if hook.last_error_date is not None:
                    info["last_error_date"] = hook.last_error_date
                    info["last_error_message"] = hook.last_error_message
            return info

    def _m_close(self, _: dict[str, Any]) -> bool:
        return True

    def _m_setMyCommands(self, params: dict[str, Any]) -> bool:
        commands = params.get("commands", [])
        listed = json.loads(commands) if isinstance(commands, str) else list(commands)
        if params.get("language_code"):
            self.commands_by_language[str(params["language_code"])] = listed
        else:
            self.commands = listed
        return True

    def _m_getMyCommands(self, _: dict[str, Any]) -> list[dict[str, Any]]:
        return self.commands

    def _m_getUpdates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook is not None:
            raise ConflictError
        offset = int(params.get("offset") or 0)
        timeout = min(float(params.get("timeout") or 0), 5.0) if self.long_polling else 0.0
        deadline = time.monotonic() + timeout
        with self.lock:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
            while not self.updates and time.monotonic() < deadline:
                self.lock.wait(min(0.05, max(deadline - time.monotonic(), 0)))
            return list(self.updates[:100])

    def _chat(self, chat_id: Any) -> _Chat:
        chat = self.chats.get(str(chat_id))
        if chat is None:
            raise LookupError("chat not found")
        return chat

    def _record(self, chat: _Chat, make: Callable[[int], SentMessage]) -> SentMessage:
        """Keep what the bot sent (under the lock, with the next message id) and wake waiters."""
        with self.lock:
            sent = make(self._next_message_id())
            self.messages.append(sent)
            self.lock.notify_all()
        if self.on_accept is not None:
            self.on_accept(sent)
        return sent

    def _message_json(self, sent: SentMessage, chat: _Chat) -> dict[str, Any]:
        return {
            "message_id": sent.message_id,
            "date": int(sent.date),
            "chat": self._chat_json(chat),
            "from": self._m_getMe({}),
        }

    def _m_sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params.get("chat_id"))
        text = str(params.get("text", ""))
        parse_mode = params.get("parse_mode")
        visible = parse_html(text) if parse_mode == "HTML" else text
        if not visible.strip():
            raise LookupError("message text is empty")
        if len(visible) > 4096:
            raise LookupError("message is too long")
        preview = params.get("link_preview_options")
        if isinstance(preview, str):
            preview = json.loads(preview)
        disabled = bool((preview or {}).get("is_disabled")) or params.get("disable_web_page_preview") in (True, "true")
        _check_markup(_json_param(params.get("reply_markup")))
        reply = _json_param(params.get("reply_parameters")) or {}
        reply_to = int(reply["message_id"]) if isinstance(reply, dict) and reply.get("message_id") else None
        sent = self._record(
            chat,
            lambda mid: SentMessage(
                chat.id,
                mid,
                text,
                parse_mode,
                time.time(),
                _json_param(params.get("reply_markup")),
                disabled,
                reply_to=reply_to,
            ),
        )
        return {**self._message_json(sent, chat), "text": visible}

    def _m_sendDocument(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params.get("chat_id"))
        document = params.get("document")
        filename, data = document if isinstance(document, tuple) else ("file", str(document).encode())
        caption, parse_mode = str(params.get("caption", "")), params.get("parse_mode")
        sent = self._record(
            chat,
            lambda mid: SentMessage(chat.id, mid, caption, parse_mode, time.time(), document=data, filename=filename),
        )
        return {
            **self._message_json(sent, chat),
            "document": {
                "file_id": f"f{sent.message_id}",
                "file_unique_id": f"u{sent.message_id}",
                "file_name": filename,
            },
        }

    def _m_sendPhoto(self, params: dict[str, Any]) -> dict[str, Any]:
        """An uploaded PNG or JPEG with an optional caption (≤ 1024 visible characters), as Telegram checks."""
        chat = self._chat(params.get("chat_id"))
        photo = params.get("photo")
        if not isinstance(photo, tuple) or not photo[1]:
            raise LookupError("there is no photo in the request")
        data = bytes(photo[1])
        if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
            width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        elif data.startswith(b"\xff\xd8\xff"):
            width = height = 1  # JPEG: not decoded here
        else:
            raise LookupError("IMAGE_PROCESS_FAILED")
        if width + height > 10000 or max(width, height) > 20 * min(width, height):
            raise LookupError("PHOTO_INVALID_DIMENSIONS")
        caption, parse_mode = str(params.get("caption", "")), params.get("parse_mode")
        visible = parse_html(caption) if parse_mode == "HTML" else caption
        if len(visible) > 1024:
            raise LookupError("message caption is too long")
        sent = self._record(chat, lambda mid: SentMessage(chat.id, mid, caption, parse_mode, time.time(), photo=data))
        size = {"file_id": f"p{sent.message_id}", "file_unique_id": f"up{sent.message_id}", "file_size": len(data)}
        return {
            **self._message_json(sent, chat),
            "photo": [{**size, "width": width, "height": height}],
            **({"caption": visible} if visible else {}),
        }

    def _m_getChat(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params.get("chat_id"))
        return {
            **self._chat_json(chat),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
            },
        }

    def _m_getChatMember(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params.get("chat_id"))
        user_id = int(params.get("user_id", 0))
        status = chat.members.get(user_id, "left")
        member: dict[str, Any] = {"status": status, "user": {"id": user_id, "is_bot": False, "first_name": "u"}}
        if status == "administrator":
            member.update(
                dict.fromkeys(
                    (
                        "can_be_edited",
                        "can_manage_chat",
                        "can_delete_messages",
                        "can_manage_video_chats",
                        "can_restrict_members",
                        "can_promote_members",
                        "can_change_info",
                        "can_invite_users",
                        "can_post_stories",
                        "can_edit_stories",
                        "can_delete_stories",
                    ),
                    True,
                )
            )
            member["is_anonymous"] = False
        elif status == "creator":
            member["is_anonymous"] = False
        return member

    def _m_editMessageText(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params.get("chat_id"))
        message_id = int(params.get("message_id", 0))
        text = str(params.get("text", ""))
        visible = parse_html(text) if params.get("parse_mode") == "HTML" else text
        with self.lock:
            for sent in self.messages:
                if str(sent.chat_id) == str(params.get("chat_id")) and sent.message_id == message_id:
                    if sent.text == text:
                        raise LookupError("message is not modified")
                    sent.text, sent.reply_markup = text, _json_param(params.get("reply_markup"))
                    sent.edits += 1
                    break
            else:
                raise LookupError("message to edit not found")
            self.lock.notify_all()
        return {**self._message_json(sent, chat), "text": visible}

    def _m_getFile(self, params: dict[str, Any]) -> dict[str, Any]:
        file_id = str(params.get("file_id"))
        if file_id not in self.files:
            raise LookupError("invalid file_id")
        return {
            "file_id": file_id,
            "file_unique_id": f"u{file_id}",
            "file_size": len(self.files[file_id]),
            "file_path": f"documents/{file_id}",
        }

    def _m_sendChatAction(self, _: dict[str, Any]) -> bool:
        return True

    def _m_answerInlineQuery(self, params: dict[str, Any]) -> bool:
        results = _json_param(params.get("results"))
        _check_inline_results(results)
        with self.lock:
            self.inline_answers[str(params.get("inline_query_id"))] = {**params, "results": results}
            self.lock.notify_all()
        return True

    def _m_answerCallbackQuery(self, params: dict[str, Any]) -> bool:
        text = str(params.get("text") or "")
        if len(text) > 200:
            raise LookupError("MESSAGE_TOO_LONG")
        with self.lock:
            self.answers[str(params.get("callback_query_id"))] = {**params, "text": text}
            self.lock.notify_all()
        return True


def _check_inline_results(results: Any) -> None:
    """Refuse inline results as Telegram does: at most 50, ids 1–64 bytes and unique, an article's
    message text 1–4096 characters (its HTML well formed)."""
    if not isinstance(results, list):
        raise LookupError("RESULTS_INVALID")
    if len(results) > 50:
        raise LookupError("RESULTS_TOO_MUCH")
    ids = [str(r.get("id", "")) for r in results]
    if len(set(ids)) != len(ids) or not all(1 <= len(i.encode()) <= 64 for i in ids):
        raise LookupError("RESULT_ID_INVALID")
    for r in results:
        content = r.get("input_message_content") or {}
        text = str(content.get("message_text", ""))
        visible = parse_html(text) if content.get("parse_mode") == "HTML" else text
        if not visible.strip() or len(visible) > 4096:
            raise LookupError("MESSAGE_TEXT_INVALID")
        _check_markup(r.get("reply_markup"))


def _check_markup(markup: Any) -> None:
    """Refuse an inline keyboard as Telegram does: callback data 1–64 bytes, at most 100 buttons."""
    if not isinstance(markup, dict) or "inline_keyboard" not in markup:
        return
    buttons = [b for row in markup["inline_keyboard"] for b in row]
    if len(buttons) > 100:
        raise LookupError("reply markup is too long")
    for button in buttons:
        data = button.get("callback_data")
        if data is not None and not 1 <= len(str(data).encode()) <= 64:
            raise LookupError("BUTTON_DATA_INVALID")
