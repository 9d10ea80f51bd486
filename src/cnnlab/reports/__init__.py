"""Reports over finished runs: read run dirs back (runs), answer each experiment's question with a plot and a
sentence (questions), and write report.md / report.html / runs.csv (render). `cnnlab-report` is cli."""
