"""MetaManager's epoch: written once per filling of the Redis, recorded in the data dir, and the stable-epoch check
that an absence must pass before anything is killed for it."""
from __future__ import annotations

import stat

from edgeworkers.metamanager.epoch import EPOCH_FILE, Epoch


def test_established_once_and_kept_until_the_data_is_lost(fake_redis, tmp_path):
    epoch = Epoch(fake_redis, tmp_path / "data")
    assert epoch.current() is None and epoch.recorded() is None
    token = epoch.establish()
    assert epoch.current() == token == epoch.recorded()
    assert Epoch(fake_redis).establish() == token  # another list keeps it
    assert stat.S_IMODE((tmp_path / "data" / EPOCH_FILE).stat().st_mode) == 0o600

    fake_redis.flushdb()
    assert epoch.current() is None and epoch.recorded() == token  # the data dir remembers what Redis forgot
    assert epoch.establish() not in (token, "")


def test_an_absence_is_known_only_when_one_epoch_stood_around_the_read(fake_redis):
    epoch = Epoch(fake_redis)
    assert epoch.known(lambda: None) == (None, False)  # no epoch: MetaManager not filled from the cloud
    epoch.establish()
    assert epoch.known(lambda: None) == (None, True)

    def lost_and_listed_again() -> None:
        fake_redis.flushdb()
        epoch.establish()

    assert epoch.known(lost_and_listed_again) == (None, False)
    assert epoch.known(fake_redis.flushdb) == (True, False)
