"""Studies: sweeps over settings and seeds (`sweep`), and reports that compare their runs (`report`)."""
