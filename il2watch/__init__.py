"""il2watch: new papers around the engineered IL-2 review, delivered to a lab's Slack."""

__version__ = "0.1.0"
