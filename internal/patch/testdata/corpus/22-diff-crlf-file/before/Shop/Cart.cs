using System;

namespace Shop
{
    public class Cart
    {
        public decimal Total { get; private set; }

        public void Add(decimal price)
        {
            Total += price;
        }
    }
}
