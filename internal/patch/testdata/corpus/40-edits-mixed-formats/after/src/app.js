import express from "express";

const app = express();
app.use(express.json());

app.get("/health", (req, res) => {
  res.json({ status: "ok" });
});

app.post("/orders", async (req, res) => {
  const order = await createOrder(req.body);
  res.status(201).json(order);
});

app.listen(process.env.PORT || 3000);
export default app;
