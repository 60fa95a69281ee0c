"""The console's pages, one module per person: sign-in, tax clerk, ICT operator, inbox, report, admin."""
