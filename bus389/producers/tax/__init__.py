"""The tax office's producer: its spreadsheet of online sellers published as undeclared-seller alerts.

:mod:`~bus389.producers.tax.spreadsheet` reads the .xlsx or .csv file, :mod:`~bus389.producers.tax.headers`
knows
its Vietnamese column headers, :mod:`~bus389.producers.tax.alerts` turns a row into a ``tax_discrepancy``
event, :mod:`~bus389.producers.tax.dedup` finds the alerts already on the tax outbox and
:mod:`~bus389.producers.tax.publish` ties them together for ``bus389 tax publish-alerts``.
"""
