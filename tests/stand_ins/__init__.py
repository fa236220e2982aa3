"""Stand-ins for the services il2watch talks to: real servers on 127.0.0.1 that answer in their shapes."""
