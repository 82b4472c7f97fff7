"""Development tools that ship in no service: the `vibe` CLI, the stack launcher, local
infrastructure, the fake Gemini server, the OTLP receiver, calibration and red-team
reports, the stub generator. Production code never imports this package."""
