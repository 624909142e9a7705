"""The post-mortem draft without Google (issue 15): REST ``GET
/api/v1/incidents/{ref}/postmortem/`` and ``imas incident postmortem REF``, as Markdown,
with the same durations as the metrics API."""

from __future__ import annotations

import re

from click.testing import CliRunner

from handlers.cli import main
from tests.api_helpers import Api


def resolved_incident(api: Api) -> str:
    ref = str(api.declare(title="Redis *down* <b>")["short_id"])
    headers = api.auth("admin")
    for path, body in (
        ("acknowledge/", None),
        ("notes/", {"text": "cache flushed on node 3"}),
        ("resolve/", {"summary": "failover to replica"}),
    ):
        response = api.client.post(f"/api/v1/incidents/{ref}/{path}", json=body, headers=headers)
        assert response.status_code in (200, 201), response.text
    return ref


def seconds_of(text: str, label: str) -> float:
    match = re.search(rf"{re.escape(label)}: .*\(([\d.]+) s\)", text)
    assert match, (label, text)
    return float(match.group(1))


def test_postmortem_markdown_matches_the_metrics(api: Api) -> None:
    ref = resolved_incident(api)
    response = api.client.get(f"/api/v1/incidents/{ref}/postmortem/", headers=api.auth("viewer"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/markdown")
    text = response.text
    assert text.startswith(f"# Post-mortem: {ref} — Redis \\*down\\* \\<b\\>\n")
    for heading in (
        "## Summary",
        "## Impact",
        "## Timeline (★ = key event)",
        "## Contributing alerts",
        "## Participants and roles",
        "## What went well",
        "## What went wrong",
        "## Action items",
    ):
        assert f"\n{heading}\n" in text
    assert "\nfailover to replica\n" in text
    assert "- Service: redis-prod (team SRE Core)" in text
    # Key events are marked; notes are not key events.
    assert re.search(
        r"- ★ .* STATUS\\_CHANGE · Status changed from TRIGGERED to ACKNOWLEDGED", text
    )
    assert re.search(r"- \d{4}-.* NOTE · cache flushed on node 3", text)

    metrics = api.client.get("/api/v1/metrics/", headers=api.auth("viewer")).json()
    assert seconds_of(text, "MTTA (time to acknowledge)") == metrics["mtta"]["mean"]
    assert seconds_of(text, "MTTR (time to resolve)") == metrics["mttr"]["mean"]
    assert seconds_of(text, "Duration") == metrics["mttr"]["mean"]


def test_postmortem_of_an_unknown_incident_is_404(api: Api) -> None:
    response = api.client.get(
        "/api/v1/incidents/INC-000000/postmortem/", headers=api.auth("viewer")
    )
    assert response.status_code == 404


def test_cli_postmortem(api: Api, database_url: str, tmp_path) -> None:
    ref = resolved_incident(api)
    env = {"IMAS_DATABASE_URL": database_url, "IMAS_SECRET_KEY": "test-secret-key"}
    result = CliRunner().invoke(main, ["incident", "postmortem", ref], env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"# Post-mortem: {ref}")
    assert "MTTR (time to resolve)" in result.stdout

    out = tmp_path / "pm.md"
    result = CliRunner().invoke(main, ["incident", "postmortem", ref, "-o", str(out)], env=env)
    assert result.exit_code == 0 and out.read_text().startswith("# Post-mortem")

    missing = CliRunner().invoke(main, ["incident", "postmortem", "INC-000000"], env=env)
    assert missing.exit_code == 2
    assert missing.stdout == "" and "Traceback" not in missing.output
    assert "No incident INC-000000" in missing.stderr.strip().splitlines()[-1]


def test_followups_over_rest(api: Api) -> None:
    ref = str(api.declare()["short_id"])
    base = f"/api/v1/incidents/{ref}/followups/"
    responder = api.auth("responder")
    before = api.counts()
    for bad in ({"title": ""}, {"title": "x", "due_date": "2030-13-01"}, {"title": "x", "y": 1}):
        response = api.client.post(base, json=bad, headers=responder)
        assert response.status_code == 400, (bad, response.text)
    assert api.counts() == before

    created = api.client.post(
        base,
        json={"title": "Add disk alerts", "owner": "oncall@example.com", "due_date": "2030-01-31"},
        headers=responder,
    )
    assert created.status_code == 201, created.text
    item = created.json()
    assert (item["title"], item["owner"], item["due_date"], item["state"]) == (
        "Add disk alerts",
        "oncall@example.com",
        "2030-01-31",
        "open",
    )
    done = api.client.post(f"{base}{item['id']}/done/", headers=responder)
    assert done.status_code == 200 and done.json()["state"] == "done"
    again = api.client.post(f"{base}{item['id']}/done/", headers=responder)
    assert again.status_code == 409
    unknown = api.client.post(f"{base}999/done/", headers=responder)
    assert unknown.status_code == 404
    listed = api.client.get(base, headers=api.auth("viewer")).json()
    assert [(f["id"], f["state"]) for f in listed] == [(item["id"], "done")]
    markdown = api.client.get(
        f"/api/v1/incidents/{ref}/postmortem/", headers=api.auth("viewer")
    ).text
    assert "- [x] \\#1 Add disk alerts — owner oncall@example.com, due 2030-01-31" in markdown
