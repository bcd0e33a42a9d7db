"""The OData translation, read from sqlglot's syntax tree: (statement, values) -> request, with
literals that hold 'where', '),(', ';', '?' and quotes."""
from __future__ import annotations

import pytest

import pooldbapi
from pooldbapi.backends.odata.translate import Request, translate

TRANSLATIONS = [
    ("select a, b from Journals where a = ? and b between 1 and 2", [5],
     Request("GET", "Journals", ["a", "b"], filter="a eq 5 and (b ge 1 and b le 2)")),
    ("select count(*) from Journals where d like 'x''y%'", [],
     Request("COUNT", "Journals", filter="startswith(d, 'x''y')")),
    ("update Journals set description = 'x where y; (a),(b)', amount = ? where ID = ?",
     [1.5, 7], Request("PATCH", "Journals", body={"description": "x where y; (a),(b)",
                                                  "amount": 1.5}, key={"ID": 7})),
    ("delete from Journals where ID = 'a''b' and k = ?", ["?"],
     Request("DELETE", "Journals", key={"ID": "a'b", "k": "?"})),
    ("insert into Journals (ID, note) values (?, '?;(x),(y)')", [3],
     Request("POST", "Journals", body={"ID": 3, "note": "?;(x),(y)"})),
    ("select * from Journals where 5 < amount order by ID desc, note limit 3", [],
     Request("GET", "Journals", [], filter="amount gt 5", orderby="ID desc,note asc", top=3)),
    ("select a from Journals j where a in (?, 'x') and b is not null and lower(a) = ?",
     [1, "local"], Request("GET", "Journals", ["a"], filter="(a eq 1 or a eq 'x') and b ne null")),
    ("select a from Journals where 1 = 0", [], Request("GET", "Journals", ["a"], empty=True)),
    ("select a from Journals where c = -2.5 and d is null and e <> true", [],
     Request("GET", "Journals", ["a"], filter="c eq -2.5 and d eq null and e ne true")),
    # an 'or' (and 'and' inside it) goes whole where OData can say both sides
    ("select a from Journals where (a < ? or a > 8 and b = 'or') and c = 1", [2],
     Request("GET", "Journals", ["a"], filter="(a lt 2 or (a gt 8 and b eq 'or')) and c eq 1")),
    # ... and stays local where it cannot say one side
    ("select a from Journals where (a = 1 or lower(b) = 'x') and c = 1", [],
     Request("GET", "Journals", ["a"], filter="c eq 1")),
]


@pytest.mark.parametrize(("text", "values", "expected"), TRANSLATIONS)
def test_statements_become_odata_requests(text, values, expected):
    assert translate(text, values) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("update Journals set a = 1", "a where clause is needed"),
    ("update Journals set a = 1 where b > 2", "by key"),
    ("select a, count(*) from Journals group by a", "not groups"),
    ("select a from Journals join b on true", "one entity set"),
    ("select upper(a) from Journals", "columns, not"),
])
def test_what_odata_cannot_say_is_refused_by_name(text, message):
    with pytest.raises(pooldbapi.NotSupportedError, match=message):
        translate(text, [])


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_a_number_that_is_no_odata_literal_is_filtered_locally_never_sent(value):
    # OData has no literal for NaN or infinity ('amount gt nan' would be a 400 from the
    # service, a client error against its budget): the conjunct is evaluated locally
    assert translate("select a from Journals where amount > ? and b = 1", [value]) == \
        Request("GET", "Journals", ["a"], filter="b eq 1")
