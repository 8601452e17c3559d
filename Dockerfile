# One image for the API and the paper exchange; the command chooses which.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir . && useradd --system --home /app aiotrade && mkdir -p /app/data \
    && chown aiotrade /app/data
USER aiotrade
EXPOSE 8000
CMD ["python", "-m", "aiotrade", "serve", "--host", "0.0.0.0", "--port", "8000"]
