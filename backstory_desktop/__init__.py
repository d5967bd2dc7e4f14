"""Backstory Desktop: switch on Backstory's cadence-tool integration in a Salesforce org, safely."""

__version__ = "0.1.0"
