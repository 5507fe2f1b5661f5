"""kubellm runtime: serving and training code that runs inside the Ray pods."""
