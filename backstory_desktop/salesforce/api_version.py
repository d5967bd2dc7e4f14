"""Version of the Salesforce REST API the product calls.

A module of its own, without imports, so that the wizard's first page can show it
without loading the Salesforce layer.
"""

API_VERSION = "64.0"
