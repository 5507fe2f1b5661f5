"""Routes kept from the systems kubellm grew from: /chat, /generate, /generate_stream, jobs."""
