"""R1: 50 concurrent declarations through signed requests give 50 incidents, 50 distinct
short ids and 50 war rooms."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from storage.models import Incident, OutboxItem
from tests.scenario.conftest import wait_until
from tests.scenario.test_seed_guide import apply_seed_config

N = 50


def test_fifty_concurrent_declarations(start_server, driver, fake_slack, tmp_path, database_url):
    apply_seed_config(tmp_path, database_url)
    server = start_server()
    slack = driver(server)
    users = [f"U0USER{i:04d}" for i in range(N)]
    for user in users:
        fake_slack.add_user(user, user.lower(), email=f"{user.lower()}@example.com")

    with ThreadPoolExecutor(max_workers=N) as pool:
        responses = list(pool.map(lambda u: slack.slash("", user_id=u), users))
    assert all(r.status_code == 200 for r in responses)
    wait_until(lambda: len(fake_slack.views_opened) >= N, message="50 modals")
    views = list(fake_slack.views_opened)

    def submit(index: int) -> int:
        return slack.submit_view(
            views[index],
            {
                "title": f"Outage number {index}",
                "service": "redis-prod",
                "severity": "SEV1_CRITICAL",
            },
            user_id=users[index],
        ).status_code

    with ThreadPoolExecutor(max_workers=N) as pool:
        codes = list(pool.map(submit, range(N)))
    assert codes == [200] * N

    def all_rooms() -> bool:
        with server.rt.transaction() as session:
            rooms = session.scalar(
                select(func.count())
                .select_from(Incident)
                .where(Incident.war_room_channel_id.is_not(None))
            )
            open_rows = session.scalar(
                select(func.count()).select_from(OutboxItem).where(OutboxItem.state != "done")
            )
            return rooms == N and open_rows == 0

    wait_until(all_rooms, message="50 war rooms")
    with server.rt.transaction() as session:
        short_ids = list(session.scalars(select(Incident.short_id)))
        channels = list(session.scalars(select(Incident.war_room_channel_id)))
    assert len(short_ids) == N and len(set(short_ids)) == N
    assert len(set(channels)) == N
    created = [c for c in fake_slack.channels.values() if c.name.startswith("inc-")]
    assert len(created) == N
