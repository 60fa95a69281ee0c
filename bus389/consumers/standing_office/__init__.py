"""The standing office (Cơ quan Thường trực BCĐ 389): its store, inbox service and six-monthly report.

Plan III.3: every member reports to the standing office, which aggregates and reports to the committee
every six months. :mod:`.service` stores every event of the ``market_surveillance`` inbox
(:mod:`.store`, idempotent by event id); :mod:`.report` computes the six-monthly report from the store,
:mod:`.correlation` recognises the same seller across members, and :mod:`.render` writes the report in
Markdown, CSV or HTML with Vietnamese labels.
"""
