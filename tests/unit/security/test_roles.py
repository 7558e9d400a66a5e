def test_every_action_has_a_label_people_read_in_refusals() -> None:
    from medarchive.security.roles import ACTION_LABELS, Action

    assert set(ACTION_LABELS) == set(Action)
