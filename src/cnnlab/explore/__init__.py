"""cnnlab-explore: trained runs live in the browser, stage by stage (cli → server → views → runs)."""
