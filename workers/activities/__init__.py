"""Everything with an effect runs here, as an activity; workflows only orchestrate."""
