"""Brief to campaign kit: a plan of deliverables drafted from a brief and its client's brand,
edited and approved by the team, then run as one tracked batch."""
