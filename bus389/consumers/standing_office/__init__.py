"""The standing office (Cơ quan Thường trực BCĐ 389): its store, inbox service and reports.

Plan III.3: every member reports to the standing office, which aggregates and reports to the committee
every six months. :mod:`.service` stores every event of the ``market_surveillance`` inbox
(:mod:`.store`, idempotent by event id); :mod:`.report` computes the six-monthly report from the store
(:mod:`.period`, :mod:`.report_model`, :mod:`.answers`); :mod:`.correlation` recognises the same seller
across members and time, :mod:`.history` lists one entity's reports, :mod:`.case_report` makes the
rapid and typical case reports. :mod:`.render` writes Markdown, CSV or HTML with Vietnamese labels,
:mod:`.charts` the charts, :mod:`.document` the Decree 30/2020/NĐ-CP Word document and :mod:`.pdf` its
PDF (:mod:`.output` picks the format); :mod:`.mail` and :mod:`.delivery` mail the report, and
:mod:`.schedule` does so on its due date.
"""
