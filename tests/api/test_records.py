import dataclasses
import inspect

import pytest

from api.storage.records import Item, LeasedItem, leased_item, new_item


@pytest.mark.parametrize(("make", "cls"), [(new_item, Item), (leased_item, LeasedItem)])
def test_the_fast_constructors_take_every_field_in_order(make, cls):
    """A field added to the record must be added to its fast constructor too."""
    assert list(inspect.signature(make).parameters) == [f.name for f in dataclasses.fields(cls)]


def test_the_fast_constructors_build_the_same_frozen_records():
    values = ("i1", 3, "some text", {"x": 1.5}, {"source": "a"}, (0, -1, 1), 1, True)
    item = new_item(*values)
    assert item == Item(*values)
    assert repr(item) == repr(Item(*values))
    leased = leased_item(item, {"strategy": "pool_order"}, True)
    assert leased == LeasedItem(Item(*values), {"strategy": "pool_order"}, True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        item.text = "changed"
    with pytest.raises(dataclasses.FrozenInstanceError):
        leased.eval = False
