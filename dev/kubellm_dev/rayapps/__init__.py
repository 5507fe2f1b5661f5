"""Trivial Ray Serve applications the e2e tier deploys onto a real local Ray through KubeRay."""
