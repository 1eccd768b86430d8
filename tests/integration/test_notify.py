"""pipeline.notify through its real channels: a local SMTP server (aiosmtpd) and a local HTTP webhook
receiver get what notify() sends; failures are raised after every channel had its turn, never silent."""
from __future__ import annotations

import json
import logging
from datetime import date

import pytest

from pipeline.notify import NotifyConfigError, NotifyError, channels_from_env, notify
from tests.support.alert_sinks import free_port, smtp_server, webhook_server

PAYLOAD = {"kind": "kpi_alerts", "as_of_date": date(2025, 12, 31),
           "alerts": [{"metric": "nps", "value": -12.5, "severity": "critical"}]}
CHANNEL_VARS = ("CRM_ALERT_SMTP_URL", "CRM_ALERT_EMAIL_FROM", "CRM_ALERT_EMAIL_TO", "CRM_ALERT_WEBHOOK_URL",
                "CRM_ALERT_TIMEOUT_SECONDS")


@pytest.fixture(autouse=True)
def no_channels(monkeypatch):
    """Each test configures exactly the channels it means to."""
    for name in CHANNEL_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CRM_ALERT_TIMEOUT_SECONDS", "5")


def mail_env(monkeypatch, url: str) -> None:
    monkeypatch.setenv("CRM_ALERT_SMTP_URL", url)
    monkeypatch.setenv("CRM_ALERT_EMAIL_FROM", "crm@example.org")
    monkeypatch.setenv("CRM_ALERT_EMAIL_TO", "ops@example.org, analyst@example.org")


def test_without_channels_the_message_is_logged_only(caplog):
    assert channels_from_env({}) == []
    with caplog.at_level(logging.WARNING, logger="pipeline.notify"):
        notify("[crm] 1 KPI alert", "- [critical] nps = -12.5 is below the minimum 0", PAYLOAD)
    assert "NOTIFY [crm] 1 KPI alert" in caplog.text and "nps = -12.5" in caplog.text


def test_the_webhook_receives_the_json(monkeypatch):
    with webhook_server() as hook:
        monkeypatch.setenv("CRM_ALERT_WEBHOOK_URL", hook.url)
        notify("[crm] 1 KPI alert", "- nps = -12.5", PAYLOAD)
        [request] = hook.wait_for(1)
    assert request["path"] == "/hooks/T000/secret-token"
    assert request["headers"]["Content-Type"] == "application/json"
    body = request["json"]
    assert body["subject"] == "[crm] 1 KPI alert" and body["body"] == "- nps = -12.5"
    assert body["text"] == "[crm] 1 KPI alert\n- nps = -12.5"  # what Slack-style webhooks display
    assert body["payload"] == {"kind": "kpi_alerts", "as_of_date": "2025-12-31",
                               "alerts": [{"metric": "nps", "value": -12.5, "severity": "critical"}]}


def test_the_smtp_server_receives_the_email(monkeypatch):
    with smtp_server() as box:
        mail_env(monkeypatch, f"smtp://{box.host}:{box.port}")
        notify("[crm] 1 KPI alert", "- nps = -12.5", PAYLOAD)
        [message] = box.wait_for(1)
    assert message["Subject"] == "[crm] 1 KPI alert"
    assert message["From"] == "crm@example.org" and message["To"] == "ops@example.org, analyst@example.org"
    assert box.envelopes == [("crm@example.org", ["ops@example.org", "analyst@example.org"])]
    text = message.get_content().replace("\r\n", "\n")  # as received over the wire
    assert text.startswith("- nps = -12.5\n")
    assert json.loads(text[text.index("{"):])["alerts"][0]["metric"] == "nps"


def test_smtp_credentials_come_from_the_url_percent_decoded(monkeypatch):
    with smtp_server(credentials={"alerts@example.org": "p@ss:w/rd"}) as box:
        # This test server has no TLS: the client must be told explicitly to send credentials in clear.
        mail_env(monkeypatch, f"smtp://alerts%40example.org:p%40ss%3Aw%2Frd@{box.host}:{box.port}?starttls=false")
        notify("subject", "body", {})
        box.wait_for(1)
        assert box.logins == ["alerts@example.org"] and len(box.messages) == 1

        mail_env(monkeypatch, f"smtp://alerts%40example.org:wrong@{box.host}:{box.port}?starttls=false")
        with pytest.raises(NotifyError, match="SMTPAuthenticationError"):
            notify("subject", "body", {})


def test_credentials_are_not_sent_without_starttls(monkeypatch):
    with smtp_server(credentials={"u": "secret"}) as box:
        mail_env(monkeypatch, f"smtp://u:secret@{box.host}:{box.port}")
        with pytest.raises(NotifyError, match="without STARTTLS") as failure:
            notify("subject", "body", {})
    assert box.logins == [] and box.messages == []
    assert "secret" not in str(failure.value)


def test_a_failing_channel_raises_after_the_others_delivered(monkeypatch, caplog):
    with webhook_server() as hook, smtp_server() as box:
        hook.status = 500
        monkeypatch.setenv("CRM_ALERT_WEBHOOK_URL", hook.url)
        mail_env(monkeypatch, f"smtp://{box.host}:{box.port}")
        with caplog.at_level(logging.ERROR, logger="pipeline.notify"), \
                pytest.raises(NotifyError, match=r"failed on 1 channel\(s\): webhook http://127\.0\.0\.1:\d+: HTTPError") as failure:
            notify("subject", "body", PAYLOAD)
        assert len(box.wait_for(1)) == 1 and len(hook.requests) == 1
    # The token in the webhook's path is a secret: neither the error nor the log shows it.
    assert "secret-token" not in str(failure.value) and "secret-token" not in caplog.text
    assert "NOTIFY FAILED via webhook" in caplog.text


def test_an_unreachable_server_and_a_misconfigured_channel_both_fail_loudly(monkeypatch):
    with webhook_server() as hook:
        monkeypatch.setenv("CRM_ALERT_WEBHOOK_URL", hook.url)
        monkeypatch.setenv("CRM_ALERT_SMTP_URL", "smtp://127.0.0.1:1")  # no sender, no recipients
        with pytest.raises(NotifyConfigError, match="CRM_ALERT_EMAIL_FROM and CRM_ALERT_EMAIL_TO are required"):
            notify("subject", "body", {})
        assert len(hook.wait_for(1)) == 1  # the webhook still got it
    mail_env(monkeypatch, f"smtp://127.0.0.1:{free_port()}")  # nothing listens there
    monkeypatch.delenv("CRM_ALERT_WEBHOOK_URL")
    with pytest.raises(NotifyError, match="ConnectionRefusedError"):
        notify("subject", "body", {})
