"""Stories on chDB: a restarted worker's index is rebuilt from the messages table; old tables gain story_id."""

from tests.stories_store_checks import (
    check_a_future_dated_message_does_not_hide_the_rest, check_old_messages_gain_story_ids,
    check_stories_survive_a_restart, check_workers_share_stories,
)


def test_stories_survive_a_restart_on_chdb(chdb_store, chdb_settings):
    check_stories_survive_a_restart(chdb_store, chdb_settings)


def test_an_old_messages_table_gains_story_ids_on_chdb(chdb_store, chdb_settings):
    check_old_messages_gain_story_ids(chdb_store, chdb_settings)


def test_workers_share_stories_on_chdb(chdb_store, chdb_settings):
    check_workers_share_stories(chdb_store, chdb_settings)


def test_a_future_dated_message_does_not_hide_the_rest_on_chdb(chdb_store, chdb_settings):
    check_a_future_dated_message_does_not_hide_the_rest(chdb_store, chdb_settings)
