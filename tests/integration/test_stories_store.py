"""Stories on clickhouse-server 18.16: a restarted worker's index is rebuilt from the messages table (the
scalar subquery and FINAL read of recent_stories), and an old messages table gains story_id DEFAULT id."""

import pytest

from tests.stories_store_checks import (
    check_a_future_dated_message_does_not_hide_the_rest, check_old_messages_gain_story_ids,
    check_stories_survive_a_restart, check_workers_share_stories,
)

pytestmark = pytest.mark.integration


def test_stories_survive_a_restart_on_the_server(server_store, stack):
    check_stories_survive_a_restart(server_store, stack)


def test_an_old_messages_table_gains_story_ids_on_the_server(server_store, stack):
    check_old_messages_gain_story_ids(server_store, stack)


def test_workers_share_stories_on_the_server(server_store, stack):
    check_workers_share_stories(server_store, stack)


def test_a_future_dated_message_does_not_hide_the_rest_on_the_server(server_store, stack):
    check_a_future_dated_message_does_not_hide_the_rest(server_store, stack)
