"""Local stand-ins for NCBI and Slack, speaking their real wire protocols."""
