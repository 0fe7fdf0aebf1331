"""Intake questionnaires, links and submissions."""
