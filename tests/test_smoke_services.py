from tests.factories import World


def test_the_world_builds_a_four_level_tree(world: World) -> None:
    assert [o.name for o in world.campaigns.path()] == ["Acme", "Marketing", "EMEA", "Campaigns"]
    assert world.campaigns.level == 3
    assert world.root.tree_id != world.globex_root.tree_id
