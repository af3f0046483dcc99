"""Demo glue for the relationship annotator (Zhang et al. 2018): what ``RelationshipAnnotator.from_demo`` needs."""
