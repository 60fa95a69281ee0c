"""The tax office's producer: its spreadsheet of online sellers published as undeclared-seller alerts.

:mod:`~producers.tax.spreadsheet` reads the .xlsx or .csv file, :mod:`~producers.tax.headers` knows
its Vietnamese column headers, :mod:`~producers.tax.alerts` turns a row into a ``tax_discrepancy``
event, :mod:`~producers.tax.dedup` finds the alerts already on the tax outbox and
:mod:`~producers.tax.publish` ties them together for ``bus389 tax publish-alerts``.
"""
