import pytest

from photon_policy.seeds import parse_seeds


def test_ranges_and_lists_in_order():
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("7, 3,10-11") == [7, 3, 10, 11]
    assert parse_seeds(5) == [5]


@pytest.mark.parametrize("spec", ["", "a", "5-2", "1,,2", "-3"])
def test_bad_specs_name_the_bad_part(spec):
    with pytest.raises(ValueError):
        parse_seeds(spec)
