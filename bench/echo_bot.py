"""The baseline: a minimal echo bot written the way line-bot-sdk v3's examples are."""

from __future__ import annotations

import os

from flask import Flask, abort, request
from linebot.v3 import WebhookHandler
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
    """Echo every text back, as in the SDK's flask-echo example."""
    app = Flask(__name__)
    configuration = Configuration(host=os.environ["LINE_API_BASE_URL"],
                                  access_token=os.environ["LINE_CHANNEL_ACCESS_TOKEN"])
    handler = WebhookHandler(os.environ["LINE_CHANNEL_SECRET"])

    @app.route("/callback", methods=["POST"])
    def callback() -> str:
        signature = request.headers.get("X-Line-Signature", "")
        body = request.get_data(as_text=True)
        try:
            handler.handle(body, signature)
        except InvalidSignatureError:
            abort(400)
        return "OK"

    @app.get("/healthz")
    def healthz() -> str:
        return "ok"

    @handler.add(MessageEvent, message=TextMessageContent)
    def handle_message(event: MessageEvent) -> None:
        with ApiClient(configuration) as api_client:
            MessagingApi(api_client).reply_message_with_http_info(ReplyMessageRequest(
                reply_token=event.reply_token, messages=[TextMessage(text=event.message.text)]))

    return app
