"""The baseline: the smallest correct line-bot-sdk v3 bot. It parses the webhook with
WebhookParser (which checks the signature) and replies to each text with one TextMessage."""

from __future__ import annotations

import os

from flask import Flask, abort, request
from linebot.v3 import WebhookParser
from linebot.v3.exceptions import InvalidSignatureError
from linebot.v3.messaging import (
    ApiClient,
    Configuration,
    MessagingApi,
    ReplyMessageRequest,
    TextMessage,
)
from linebot.v3.webhooks import MessageEvent, TextMessageContent


def create_app() -> Flask:
    """Echo every text back."""
    app = Flask(__name__)
    parser = WebhookParser(os.environ["LINE_CHANNEL_SECRET"])
    api = MessagingApi(ApiClient(Configuration(
        host=os.environ["LINE_API_BASE_URL"], access_token=os.environ["LINE_CHANNEL_ACCESS_TOKEN"])))

    @app.post("/callback")
    def callback() -> str:
        try:
            events = parser.parse(request.get_data(as_text=True),
                                  request.headers.get("X-Line-Signature", ""))
        except InvalidSignatureError:
            abort(400)
        for event in events:
            if isinstance(event, MessageEvent) and isinstance(event.message, TextMessageContent):
                api.reply_message(ReplyMessageRequest(
                    reply_token=event.reply_token, messages=[TextMessage(text=event.message.text)]),
                    _request_timeout=5)
        return "OK"

    @app.get("/healthz")
    def healthz() -> str:
        return "ok"

    return app
