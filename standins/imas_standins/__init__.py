"""Local stand-ins for the services IMAS talks to (used by the tests, the benches and
``imas demo``). Equipment, not product: the separate ``imas-standins`` distribution
(``pip install -e ./standins``), never shipped in the ``imas`` wheel.

* :class:`FakeSlack` - a stateful Slack Web API on a real localhost socket.
* :class:`SlackDriver` - "the human": signed slash commands, clicks, view submissions and
  events sent to the bot's Request URL, timed against Slack's 3-second limit.
"""

from imas_standins.slack_api import Call, FakeChannel, FakeSlack, FakeUser
from imas_standins.slack_driver import SlackDriver, build_state_values

__all__ = ["Call", "FakeChannel", "FakeSlack", "FakeUser", "SlackDriver", "build_state_values"]
